"""The operator console: server-rendered pages under ``/console`` (Jinja2, htmx), signed in
with a console user's password and kept by a server-side session."""
