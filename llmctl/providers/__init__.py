"""Model backends behind one protocol. Adapters are imported lazily by the registry."""
