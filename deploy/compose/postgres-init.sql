-- Run once by the postgres image on its first start (as POSTGRES_USER): LiteLLM's own
-- database beside vigil's, so that LiteLLM's admin API (which vigil's runbooks call) works.
CREATE DATABASE litellm;
