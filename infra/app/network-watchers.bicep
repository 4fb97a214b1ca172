// A Network Watcher in each listed region, named and placed as the platform does (NetworkWatcher_<region>
// in NetworkWatcherRG). A subscription holds one watcher per region: leave out regions that already have
// one under another name or group.
param regions array

resource watchers 'Microsoft.Network/networkWatchers@2024-05-01' = [
  for region in regions: {
    name: 'NetworkWatcher_${region}'
    location: region
    properties: {}
  }
]
