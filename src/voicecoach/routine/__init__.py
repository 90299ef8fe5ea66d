"""Routines as written: the model, the loader, the schema, the library, wording, lint."""
