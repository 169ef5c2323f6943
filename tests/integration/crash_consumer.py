"""A consumer process for test_soak.py, killed with SIGKILL at random: consumes QUEUE on
HOST:PORT as USER/PASS and acks every message but every 3rd, writing one line per event to
stdout (flushed at once): "D <id> <0|1 redelivered>" on a delivery and "A <id>" *before* the ack
is sent, so that a kill between the two leaves the ledger on the safe side.

Usage: crash_consumer.py HOST PORT USER PASS QUEUE"""
import ctypes
import signal
import sys

import pika


def main():
    host, port, user, password, queue = sys.argv[1:6]
    ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the test
    params = pika.ConnectionParameters(host=host, port=int(port), socket_timeout=10, stack_timeout=20,
                                       connection_attempts=1,
                                       credentials=pika.PlainCredentials(user, password))
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    ch.basic_qos(prefetch_count=100)
    out = sys.stdout
    for method, _props, body in ch.consume(queue, inactivity_timeout=1):
        if method is None:
            continue
        msg_id = int(body)
        out.write("D %d %d\n" % (msg_id, 1 if method.redelivered else 0))
        out.flush()
        if msg_id % 3 != 0:
            out.write("A %d\n" % msg_id)
            out.flush()
            ch.basic_ack(method.delivery_tag)


if __name__ == "__main__":
    try:
        main()
    except Exception:
        sys.exit(1)
