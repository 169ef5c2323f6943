/* stream_readers: N consumers read a stream from x-stream-offset=first, each on its own connection
 * and thread (rabbitmq-c), acking with multiple=true every ACK_EVERY messages, until each has
 * received `messages` deliveries; prints the elapsed time. For the streams benchmark in the report
 * (docs/ARCHITECTURE.md, "Streams"); not built by CMake:
 *
 *   gcc -O2 -o /tmp/stream_readers tests/bench/stream_readers.c -lrabbitmq -lpthread
 *   /tmp/stream_readers HOST PORT QUEUE CONSUMERS MESSAGES [PREFETCH]
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ACK_EVERY 100

static const char *host, *queue;
static int port, prefetch = 1000;
static long messages;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static int check(amqp_rpc_reply_t r, const char *what) {
  if (r.reply_type == AMQP_RESPONSE_NORMAL) return 0;
  fprintf(stderr, "%s failed (reply type %d)\n", what, r.reply_type);
  return -1;
}

static void *reader(void *arg) {
  long *result = arg;
  *result = -1;
  amqp_connection_state_t c = amqp_new_connection();
  amqp_socket_t *s = amqp_tcp_socket_new(c);
  if (amqp_socket_open(s, host, port) != 0) { fprintf(stderr, "connect failed\n"); return NULL; }
  if (check(amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"), "login")) return NULL;
  amqp_channel_open(c, 1);
  if (check(amqp_get_rpc_reply(c), "channel.open")) return NULL;
  amqp_basic_qos(c, 1, 0, (uint16_t)prefetch, 0);
  if (check(amqp_get_rpc_reply(c), "basic.qos")) return NULL;
  amqp_table_entry_t entry = {.key = amqp_cstring_bytes("x-stream-offset"),
                              .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("first")}};
  amqp_table_t args = {.num_entries = 1, .entries = &entry};
  amqp_basic_consume(c, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0, args);
  if (check(amqp_get_rpc_reply(c), "basic.consume")) return NULL;
  long got = 0;
  while (got < messages) {
    amqp_envelope_t e;
    amqp_maybe_release_buffers(c);
    amqp_rpc_reply_t r = amqp_consume_message(c, &e, NULL, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) { fprintf(stderr, "consume failed after %ld\n", got); return NULL; }
    ++got;
    if (got % ACK_EVERY == 0 || got == messages) amqp_basic_ack(c, 1, e.delivery_tag, 1);
    amqp_destroy_envelope(&e);
  }
  *result = got;
  amqp_connection_close(c, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(c);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: %s HOST PORT QUEUE CONSUMERS MESSAGES [PREFETCH]\n", argv[0]);
    return 2;
  }
  host = argv[1];
  port = atoi(argv[2]);
  queue = argv[3];
  int n = atoi(argv[4]);
  messages = atol(argv[5]);
  if (argc > 6) prefetch = atoi(argv[6]);
  pthread_t threads[256];
  long results[256];
  if (n < 1 || n > 256) return 2;
  double start = now();
  for (int i = 0; i < n; ++i) pthread_create(&threads[i], NULL, reader, &results[i]);
  int failed = 0;
  for (int i = 0; i < n; ++i) {
    pthread_join(threads[i], NULL);
    if (results[i] != messages) failed = 1;
  }
  double elapsed = now() - start;
  printf("{\"consumers\": %d, \"messages_each\": %ld, \"seconds\": %.2f, \"deliveries_per_s\": %.0f, \"ok\": %s}\n", n,
         messages, elapsed, n * messages / elapsed, failed ? "false" : "true");
  return failed;
}
