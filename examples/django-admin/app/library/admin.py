"""The admin's pages for the library: change lists with columns and a search box."""
from django.contrib import admin

from .models import Author, Book


@admin.register(Author)
class AuthorAdmin(admin.ModelAdmin):
    list_display = ["name"]
    search_fields = ["name"]


@admin.register(Book)
class BookAdmin(admin.ModelAdmin):
    list_display = ["title", "author", "pages"]
    list_select_related = ["author"]
    search_fields = ["title", "author__name"]
