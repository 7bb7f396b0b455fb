"""What commands do, without terminal I/O."""
