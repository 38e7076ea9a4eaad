"""JSON Schemas of the config (draft 2020-12), shipped as package data."""
