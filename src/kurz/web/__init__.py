"""The web app for people: server-rendered pages under /_/ (a second slash, so no page
can be a short code), their static files, and /docs."""
