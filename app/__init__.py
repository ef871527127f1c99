"""PoZapisi: online booking for service businesses in Kazakhstan."""
