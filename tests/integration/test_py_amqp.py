"""python-amqp (the client under kombu/Celery) logs in with AMQPLAIN and with PLAIN, publishes
and gets a message back; a wrong password is refused with 403."""
import amqp
import pytest


@pytest.mark.parametrize("method", ["AMQPLAIN", "PLAIN"])
def test_login_methods_round_trip(server, method):
    conn = amqp.Connection("%s:%d" % (server.host, server.port), userid=server.user,
                           password=server.password, login_method=method, connect_timeout=5)
    conn.connect()
    try:
        ch = conn.channel()
        queue, _, _ = ch.queue_declare("", exclusive=True)
        ch.basic_publish(amqp.Message("via " + method, content_type="text/plain"), routing_key=queue)
        msg = ch.basic_get(queue, no_ack=True)
        assert msg.body == "via " + method
        assert msg.properties["content_type"] == "text/plain"
    finally:
        conn.close()


def test_wrong_password_refused(server):
    conn = amqp.Connection("%s:%d" % (server.host, server.port), userid=server.user,
                           password="wrong", login_method="AMQPLAIN", connect_timeout=5)
    with pytest.raises(amqp.exceptions.AccessRefused):
        conn.connect()
