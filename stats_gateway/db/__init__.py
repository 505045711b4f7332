"""PostgreSQL: embedded server, migrations, generated domain schema."""
