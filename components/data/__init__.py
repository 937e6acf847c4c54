"""The data tier (docs/data.md): the data key, the file bucket, PostgreSQL and Redis."""
