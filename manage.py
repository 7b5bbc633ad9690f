#!/usr/bin/env python
"""Django's command-line utility for convgen."""

import os
import sys


def _unmigrated_database() -> bool:
    """Whether the database lacks tables that migrations would create."""
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.db.migrations.executor import MigrationExecutor

    try:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        return bool(executor.migration_plan(executor.loader.graph.leaf_nodes()))
    except Exception:  # the database cannot even be asked: not this problem
        return False


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "convgen_site.settings")
    from django.core.management import execute_from_command_line
    from django.db import OperationalError, ProgrammingError

    try:
        execute_from_command_line(sys.argv)
    except (OperationalError, ProgrammingError) as exc:
        # A database that was never migrated ("no such table"): say what to run, no traceback.
        if not _unmigrated_database():
            raise
        sys.stderr.write(
            f"The database has no tables for convgen yet ({exc}).\n"
            "Run `python manage.py migrate` first, then this command again.\n"
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
