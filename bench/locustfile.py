"""The load test's scenario for Locust, so that bench/vs-locust.ts can compare what each generator
spends per request. Each user signs up, logs in, then acts ACTIONS times: a reply to a random thread
of the forum (REPLY_SHARE of the time) or a new thread, each checked on the page it lands on, as
lib/forum.ts does. XPath through lxml, as a Locust user would write it.

    USERS=300 ACTIONS=5 CPU_REPORT=out.json locust -f bench/locustfile.py --headless \
        -u 300 -r 300 --host http://127.0.0.1:8080/myapp/
"""
import json
import os
import random
import resource
import time
from itertools import count

from locust import HttpUser, events, task
from locust.exception import StopUser
from lxml import html

USERS = int(os.environ.get("USERS", "100"))
ACTIONS = int(os.environ.get("ACTIONS", "10"))
REPLY_SHARE = float(os.environ.get("REPLY_SHARE", "0.9"))
INSTANCE = os.environ.get("INSTANCE", format(int(time.time()), "x"))
FORUM = os.environ.get("FORUM_NAME", "Other")
PASSWORD = "load-password"
numbers = count()
finished = count(1)


def submit(client, page, form_class, values, name):
    """Posts the page's form with its hidden fields (the CSRF token) and `values`."""
    doc = html.fromstring(page.content)
    form = doc.xpath("//form[@class=$c]", c=form_class)
    if not form:
        raise AssertionError(f"no form {form_class} on {page.url}")
    fields = {i.get("name"): i.get("value", "") for i in form[0].xpath(".//input[@type='hidden']")}
    fields.update(values)
    return client.post(form[0].get("action"), data=fields, name=name)


class ForumUser(HttpUser):
    def on_start(self):
        self.username = f"locust_user_{INSTANCE}_{next(numbers)}"
        submit(self.client, self.client.get("signup", name="GET /signup"), "signup",
               {"username": self.username, "password": PASSWORD, "email": f"{self.username}@example.org"}, "POST /signup")
        self.client.cookies.clear()
        home = submit(self.client, self.client.get("login", name="GET /login"), "login",
                      {"username": self.username, "password": PASSWORD}, "POST /login")
        if html.fromstring(home.content).xpath("string(//span[@class='user'])") != self.username:
            raise AssertionError(f"{self.username} is not logged in")
        href = html.fromstring(home.content).xpath("//tr[@class='forum']/th[@class='name']/a[text()=$n]/@href", n=FORUM)
        self.forum = href[0].split("id=")[1]
        self.done = 0

    @task
    def act(self):
        if self.done >= ACTIONS:
            if next(finished) >= USERS:
                self.environment.runner.quit()
            raise StopUser()
        self.done += 1
        if random.random() < REPLY_SHARE:
            self.reply()
        else:
            self.new_thread()

    def reply(self):
        forum = self.client.get(f"forum?id={self.forum}", name="GET /forum")
        links = html.fromstring(forum.content).xpath("//th[@class='subject']/a/@href")
        thread = self.client.get(random.choice(links), name="GET /thread")
        body = f"Reply {random.randrange(10**9)} from {self.username}"
        after = submit(self.client, thread, "reply", {"body": body}, "POST /reply")
        bodies = html.fromstring(after.content).xpath("//div[@class='post']/div[@class='body']/text()")
        if body not in bodies:
            raise AssertionError("the reply did not appear")

    def new_thread(self):
        forum = self.client.get(f"forum?id={self.forum}", name="GET /forum")
        title = f"Thread {random.randrange(10**12):x} by {self.username}"
        after = submit(self.client, forum, "new-thread", {"title": title, "body": "Started by Locust."}, "POST /new-thread")
        if html.fromstring(after.content).xpath("string(//h1[@class='title'])") != title:
            raise AssertionError("the thread did not appear")


@events.quitting.add_listener
def report(environment, **_):
    """Writes this process's CPU time and request counts, for bench/vs-locust.ts."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    stats = environment.stats.total
    with open(os.environ.get("CPU_REPORT", "locust-cpu.json"), "w") as out:
        posts = sum(e.num_requests for e in environment.stats.entries.values() if e.method == "POST")
        # requests follows each POST's 303 inside one call: those GETs were sent but not counted.
        json.dump({"cpuSeconds": usage.ru_utime + usage.ru_stime, "requests": stats.num_requests + posts,
                   "failures": stats.num_failures, "actions": USERS * (2 + ACTIONS)}, out)
