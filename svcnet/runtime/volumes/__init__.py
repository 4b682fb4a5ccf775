"""Pod volumes: the pure plan (:mod:`.plan`) and the thin writer (:mod:`.writer`)."""
