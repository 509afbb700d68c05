"""Several runs at once: `candidates` (the resumable runner that trains configs one after another as
`tuneforge train` children), `sweep` (a grid), `bench` (every method on one budget), `leaderboard`
(their table and plots)."""
