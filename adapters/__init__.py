"""Backends, one module (or package) per ``kind:`` of models.yaml, above the
transport that carries their bytes. ``adapters.registry`` maps each kind to
its adapter; ``adapters.errors`` is the exception tree every layer raises.
"""
