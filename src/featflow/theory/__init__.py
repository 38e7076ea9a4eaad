"""Feature learning theory (Shi, Wei & Liang, ICLR 2022): data model, two-layer networks, fixed features."""
