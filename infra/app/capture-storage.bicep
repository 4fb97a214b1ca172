// The capture storage account, separate from the function's own: Network Watcher writes the .cap files
// through SAS tokens, so key access stays on here (and only here); Standard (Premium is not supported),
// in the VMs' region, TLS 1.2, no public blob access, captures deleted after retentionDays.
param name string
param location string
param tags object
@minValue(1)
param retentionDays int

var containerName = 'network-watcher-logs' // where Network Watcher writes; capture/naming.py CONTAINER

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35:Network Watcher's agent uploads from the target VMs' subnets, which this template does not know; restrict with networkAcls once they are known
  // checkov:skip=CKV_AZURE_59:same as CKV_AZURE_35: the VMs' agent must reach the account; writes need a SAS and reads need Entra ID, blob public access is off
  // checkov:skip=CKV_AZURE_206:captures are short-lived diagnostics deleted by the lifecycle rule; LRS keeps idle cost lowest
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    accessTier: 'Hot'
    // Network Watcher authorizes its writes with SAS tokens, which need key access (packet capture docs).
    allowSharedKeyAccess: true
    defaultToOAuthAuthentication: true // people and the app use Entra ID; keys only for Network Watcher's SAS
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: { defaultAction: 'Allow', bypass: 'AzureServices' }
  }

  resource blobService 'blobServices' = {
    name: 'default'
    properties: {
      deleteRetentionPolicy: { enabled: true, days: 7 }
    }

    resource container 'containers' = {
      name: containerName
      properties: { publicAccess: 'None' }
    }
  }

  resource lifecycle 'managementPolicies' = {
    name: 'default'
    properties: {
      policy: {
        rules: [
          {
            name: 'delete-captures'
            enabled: true
            type: 'Lifecycle'
            definition: {
              filters: {
                blobTypes: ['blockBlob', 'appendBlob']
                prefixMatch: ['${containerName}/']
              }
              actions: {
                baseBlob: { delete: { daysAfterModificationGreaterThan: retentionDays } }
                snapshot: { delete: { daysAfterCreationGreaterThan: retentionDays } }
              }
            }
          }
        ]
      }
    }
  }
}

output id string = storage.id
output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output containerName string = storage::blobService::container.name
