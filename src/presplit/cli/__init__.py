"""Command-line faces of presplit (click). Each subcommand lives in its own module."""
