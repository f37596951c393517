"""ChanStore: owns channel states (atomic updates, durable group commit over LevelDB)."""
