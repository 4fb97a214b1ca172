"""Alert-triggered Network Watcher packet capture: the deployed domain code."""
