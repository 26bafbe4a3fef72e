"""The gateway's SQLite store: schema, numbered migrations, and every SQL statement."""
