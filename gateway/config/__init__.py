"""models.yaml: the typed schema (``schema``, ``access``, ``observability``;
provider variants live in ``adapters.config``) and its loader (``loader``)."""
