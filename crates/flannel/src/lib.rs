//! flannel's node-local state as pure data: `subnet.env` and `net-conf.json`.
