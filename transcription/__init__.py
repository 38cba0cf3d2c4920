"""Speech to text: engines behind one `Transcriber` protocol, and the queue worker."""
