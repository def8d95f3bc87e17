"""gunicorn's settings for the example site; bind, workers and threads come on the command line."""
import os
import signal
import threading

wsgi_app = "adminsite.wsgi:application"
worker_class = "gthread"
# Requests in the error log only: an access log line per request costs the server CPU a load test needs.
accesslog = None
loglevel = "info"
# How long an idle kept-alive connection stays open (gunicorn's default is 2 s): a user who waited longer than that
# for a CPU would otherwise send on a connection the server is closing, and see it reset.
keepalive = 75


def on_starting(server):
    """Stops gunicorn gracefully when its standard input closes: the parent that started it stopped or died."""

    def watch():
        # os.read, not sys.stdin: a buffered reader's lock, held here, would be copied into every forked worker.
        while os.read(0, 4096):
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()
