"""The chat domain: pure logic, no sockets and no event loop."""
