"""Exchange adapters behind one interface (base.ExchangeAdapter); registry.adapter_for picks one per connection."""
