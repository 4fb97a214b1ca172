// The function app's own storage (AzureWebJobsStorage, deployment package, follow-through queues):
// identity only, shared keys off.
param name string
param location string
param tags object
param deploymentContainerName string
param queueNames array

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35:Flex Consumption without VNet integration reaches its storage over public endpoints; access is Entra ID only (shared keys off)
  // checkov:skip=CKV_AZURE_59:same as CKV_AZURE_35; blob public access is off
  // checkov:skip=CKV_AZURE_206:host state and deployment package are re-created by azd up; LRS keeps idle cost lowest
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
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

    resource deploymentContainer 'containers' = {
      name: deploymentContainerName
      properties: { publicAccess: 'None' }
    }
  }

  resource queueService 'queueServices' = {
    name: 'default'
  }
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queue in queueNames: {
    parent: storage::queueService
    name: queue
  }
]

// The Functions host moves a message here after its last failed attempt; created up front so the
// identity needs no more than data access.
resource poisonQueues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queue in queueNames: {
    parent: storage::queueService
    name: '${queue}-poison'
  }
]

output name string = storage.name
output deploymentContainerName string = storage::blobService::deploymentContainer.name
