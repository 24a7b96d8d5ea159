"""What the code around a network needs of it, declared by the network: its traits, its checkpoints' keys and
loading, the whole-sequence protocol, and rewrites that make it faster without changing its values. Training,
testing, inference and export all stand on this layer; none of them asks which network it holds."""
