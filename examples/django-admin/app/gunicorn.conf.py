"""gunicorn's settings for the example site; bind, workers and threads come on the command line."""
wsgi_app = "adminsite.wsgi:application"
worker_class = "gthread"
# Requests in the error log only: an access log line per request costs the server CPU a load test needs.
accesslog = None
loglevel = "info"
# How long an idle kept-alive connection stays open (gunicorn's default is 2 s): a user who waited longer than that
# for a CPU would otherwise send on a connection the server is closing, and see it reset.
keepalive = 75

