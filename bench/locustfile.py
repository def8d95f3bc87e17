"""The load test's scenario for Locust, so that bench/vs-locust.ts can compare what each generator
spends per request. Each user signs up, logs in, then acts ACTIONS times: a reply to a random thread
on the forum's first page (REPLY_SHARE of the time) or a new thread, each checked on the page it lands
on, as lib/forum.ts does. XPath through lxml, as a Locust user would write it. Two users with the same
behaviour: ForumUser on HttpUser (python-requests) and FastForumUser on FastHttpUser (geventhttpclient,
the client Locust recommends for load); name one on the command line.

    USERS=300 ACTIONS=5 CPU_REPORT=out.json locust -f bench/locustfile.py --headless \
        -u 300 -r 300 --host http://127.0.0.1:8080/myapp/ FastForumUser
"""
import json
import os
import random
import resource
import time
from itertools import count

from locust import HttpUser, events
from locust.contrib.fasthttp import FastHttpUser
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


def parse(page):
    """The page's document; FastHttpUser's responses hold their content in a buffer, not bytes."""
    return html.fromstring(bytes(page.content))


def submit(client, page, form_class, values, name):
    """Posts the page's form with its hidden fields (the CSRF token) and `values`."""
    doc = parse(page)
    form = doc.xpath("//form[@class=$c]", c=form_class)
    if not form:
        raise AssertionError(f"no form {form_class} on {page.url}")
    fields = {i.get("name"): i.get("value", "") for i in form[0].xpath(".//input[@type='hidden']")}
    fields.update(values)
    return client.post(form[0].get("action"), data=fields, name=name)


class ForumBehaviour:
    """What a user does, over whichever client the User class below gives it."""

    def on_start(self):
        self.username = f"locust_user_{INSTANCE}_{next(numbers)}"
        submit(self.client, self.client.get("signup", name="GET /signup"), "signup",
               {"username": self.username, "password": PASSWORD, "email": f"{self.username}@example.org"}, "POST /signup")
        self.clear_cookies()
        home = submit(self.client, self.client.get("login", name="GET /login"), "login",
                      {"username": self.username, "password": PASSWORD}, "POST /login")
        if parse(home).xpath("string(//span[@class='user'])") != self.username:
            raise AssertionError(f"{self.username} is not logged in")
        href = parse(home).xpath("//tr[@class='forum']/th[@class='name']/a[text()=$n]/@href", n=FORUM)
        self.forum = href[0].split("id=")[1]
        self.done = 0

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

    # Locust collects a User's tasks from its bases' `tasks`, not from a mixin's decorated methods.
    tasks = [act]

    def reply(self):
        forum = self.client.get(f"forum?id={self.forum}", name="GET /forum")
        links = parse(forum).xpath("//th[@class='subject']/a/@href")
        thread = self.client.get(random.choice(links), name="GET /thread")
        body = f"Reply {random.randrange(10**9)} from {self.username}"
        after = submit(self.client, thread, "reply", {"body": body}, "POST /reply")
        bodies = parse(after).xpath("//div[@class='post']/div[@class='body']/text()")
        if body not in bodies:
            raise AssertionError("the reply did not appear")

    def new_thread(self):
        forum = self.client.get(f"forum?id={self.forum}", name="GET /forum")
        title = f"Thread {random.randrange(10**12):x} by {self.username}"
        after = submit(self.client, forum, "new-thread", {"title": title, "body": "Started by Locust."}, "POST /new-thread")
        if parse(after).xpath("string(//h1[@class='title'])") != title:
            raise AssertionError("the thread did not appear")


class ForumUser(ForumBehaviour, HttpUser):
    def clear_cookies(self):
        self.client.cookies.clear()


class FastForumUser(ForumBehaviour, FastHttpUser):
    def clear_cookies(self):
        self.client.cookiejar.clear()


@events.quitting.add_listener
def report(environment, **_):
    """Writes this process's CPU time and request counts, for bench/vs-locust.ts."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    stats = environment.stats.total
    with open(os.environ.get("CPU_REPORT", "locust-cpu.json"), "w") as out:
        posts = sum(e.num_requests for e in environment.stats.entries.values() if e.method == "POST")
        # Each client follows a POST's 303 inside one call: those GETs were sent but not counted.
        # A failed check (an AssertionError in a task) is an exception, not a request failure: both count.
        json.dump({"cpuSeconds": usage.ru_utime + usage.ru_stime, "requests": stats.num_requests + posts,
                   "failures": stats.num_failures + sum(e["count"] for e in environment.runner.exceptions.values()), "actions": USERS * (2 + ACTIONS)}, out)
