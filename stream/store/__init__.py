"""The store: tables of every package, migrations, sink, retention and the audit chain."""
