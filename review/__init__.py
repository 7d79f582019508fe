"""The review app: a web app (FastAPI, server-rendered pages plus a JSON API) for professional-standards
staff to triage alerts, with privacy by default and a hash-chained audit trail of everything they do."""
