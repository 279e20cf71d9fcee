// Real-engine tests: written next.
