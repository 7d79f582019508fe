"""Alembic environment: runs with the connection Custodes hands over (see stream.store.alerts.migrate)."""

from alembic import context
from sqlalchemy import create_engine

from stream.store.tables import metadata

connection = context.config.attributes.get("connection")


def run() -> None:
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    from stream.contract.settings import load

    engine = create_engine(load().db_url)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
