// Role assignments inside the app's resource group: built-in data roles on the function's own storage,
// Application Insights and the capture account, plus the custom capture-storage role on that account only.
param principalId string
@description('Optional user given read access to the capture files; empty for none.')
param userPrincipalId string
param functionStorageName string
param applicationInsightsName string
param captureStorageName string
param captureContainerName string
param captureStorageRoleId string
param reportDownloadLinks bool

// Built-in role definition IDs (Azure built-in roles reference).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // AzureWebJobsStorage: host keys, timer leases, deployment package
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // the CaptureQueue follow-through queues
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb' // Application Insights with local auth off
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe' // read the .cap, write summary and chart
var storageBlobDelegator = 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a' // generateUserDelegationKey: report download links
var storageBlobDataReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1' // the optional user: download captures

resource functionStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: functionStorageName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource captureStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: captureStorageName

  resource blobService 'blobServices' existing = {
    name: 'default'

    resource container 'containers' existing = {
      name: captureContainerName
    }
  }
}

resource functionBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(functionStorage.id, principalId, storageBlobDataOwner)
  scope: functionStorage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
  }
}

resource functionQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(functionStorage.id, principalId, storageQueueDataContributor)
  scope: functionStorage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, principalId, monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
  }
}

resource captureContainerContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(captureStorage::blobService::container.id, principalId, storageBlobDataContributor)
  scope: captureStorage::blobService::container
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
  }
}

// The user-delegation key is an account-level action: a container-scoped assignment cannot grant it.
resource captureDelegator 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (reportDownloadLinks) {
  name: guid(captureStorage.id, principalId, storageBlobDelegator)
  scope: captureStorage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDelegator)
  }
}

// Network Watcher writes the capture file through the caller's access to the account (custom role).
resource captureStorageCustom 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(captureStorage.id, principalId, captureStorageRoleId)
  scope: captureStorage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: captureStorageRoleId
  }
}

resource userReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(captureStorage::blobService::container.id, userPrincipalId, storageBlobDataReader)
  scope: captureStorage::blobService::container
  properties: {
    principalId: userPrincipalId
    principalType: 'User'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataReader)
  }
}
