// The function app: Flex Consumption, Python 3.11, managed identity for everything (storage, Application
// Insights, ARM), optional App Service Authentication for the Secure Webhook.
param name string
param planName string
param location string
param tags object
@description('Resource ID of a user-assigned identity; empty = system-assigned.')
param userAssignedIdentityId string
param userAssignedIdentityClientId string
param storageAccountName string
param deploymentContainerName string
param applicationInsightsName string
@description('The app\'s own settings (main.bicep captureAppSettings).')
param appSettings object
param secureWebhook bool
param webhookAppClientId string
param webhookAppIdentifierUri string
param allowedApplications array

// The webhook function's route (capture/http.py `route="alerts"`) under host.json's routePrefix "api";
// tests/infra/test_alerting.py checks both against the indexed app.
var routePrefix = 'api'
var webhookRoute = 'alerts'
var userAssigned = !empty(userAssignedIdentityId)

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225:zone redundancy is a regional opt-in on Flex Consumption; left off so the template deploys in every Flex region
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: { reserved: true }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_16:false positive: the identity type is an expression (system-assigned, or user-assigned with useUserAssignedIdentity)
  // checkov:skip=CKV_AZURE_71:false positive, as CKV_AZURE_16
  // checkov:skip=CKV_AZURE_222:Azure Monitor action groups call the webhook over the internet (no private endpoint); function key and optional Entra token protect it
  // checkov:skip=CKV_AZURE_17:action groups cannot present client certificates
  // checkov:skip=CKV_AZURE_212:Flex Consumption scales to zero; always-ready instances would add idle cost for an alert-driven app
  // checkov:skip=CKV_AZURE_213:the platform manages Flex Consumption instances; the app has no health endpoint
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: userAssigned ? { type: 'UserAssigned', userAssignedIdentities: { '${userAssignedIdentityId}': {} } } : { type: 'SystemAssigned' }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false // callers are Azure Monitor action groups: function key or Entra token, no client certificates
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: userAssigned ? { type: 'UserAssignedIdentity', userAssignedIdentityResourceId: userAssignedIdentityId } : { type: 'SystemAssignedIdentity' }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: 2048
        maximumInstanceCount: 40
      }
      runtime: { name: 'python', version: '3.11' }
    }
  }
}

// Settings the platform reads (identity-based connections, telemetry). The app's own come from appSettings.
var userAssignedSettings = {
  AzureWebJobsStorage__clientId: userAssignedIdentityClientId
  CaptureQueue__clientId: userAssignedIdentityClientId
  AZURE_CLIENT_ID: userAssignedIdentityClientId
}
var identitySettings = userAssigned ? userAssignedSettings : {}
var platformSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
  AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
  CaptureQueue__credential: 'managedidentity'
  CaptureQueue__queueServiceUri: storage.properties.primaryEndpoints.queue
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: userAssigned ? 'ClientId=${userAssignedIdentityClientId};Authorization=AAD' : 'Authorization=AAD'
}

resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13:site check on a config child; App Service Authentication is easy-auth.bicep (secureWebhook), the function key guards the webhook otherwise
  // checkov:skip=CKV_AZURE_63:site check on a config child; Flex Consumption logs go to Application Insights
  // checkov:skip=CKV_AZURE_65:site check on a config child; Flex Consumption logs go to Application Insights
  // checkov:skip=CKV_AZURE_66:site check on a config child; Flex Consumption logs go to Application Insights
  // checkov:skip=CKV_AZURE_80:site check on a config child; the app is Python, not .NET
  // checkov:skip=CKV_AZURE_88:site check on a config child; Flex Consumption has no Azure Files content share
  // checkov:skip=CKV_AZURE_222:site check on a config child; see the site's skip
  parent: site
  name: 'appsettings'
  properties: union(platformSettings, identitySettings, appSettings)
}

// Secure Webhook: App Service Authentication restricted to the Azure Monitor webhook application.
module authentication 'easy-auth.bicep' = if (secureWebhook) {
  name: 'authentication'
  params: {
    siteName: site.name
    clientId: webhookAppClientId
    identifierUri: webhookAppIdentifierUri
    allowedApplications: allowedApplications
  }
}

output id string = site.id
output name string = site.name
output principalId string = userAssigned ? '' : site.identity.principalId
output webhookRoute string = '${routePrefix}/${webhookRoute}'
output webhookUrl string = 'https://${site.properties.defaultHostName}/${routePrefix}/${webhookRoute}'
