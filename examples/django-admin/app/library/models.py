"""Two related models for the admin to manage: an author has many books."""
from django.db import models


class Author(models.Model):
    name = models.CharField(max_length=200, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Book(models.Model):
    title = models.CharField(max_length=200)
    author = models.ForeignKey(Author, on_delete=models.PROTECT, related_name="books")
    pages = models.PositiveIntegerField(default=100)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return self.title
