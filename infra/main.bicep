// Alert -> packet capture: everything `azd up` provisions (azd compiles this file with Bicep).
// Subscription-scoped like the azd Functions quickstarts: it creates the resource group, then places each
// resource and each role assignment at its own scope through modules.
targetScope = 'subscription'

// ---------------------------------------------------------------- azd environment

@minLength(1)
@maxLength(64)
@description('azd environment name; feeds the resource names and tags.')
param environmentName string

@minLength(1)
@description('Region of the function app and its resource group (a region that offers Flex Consumption).')
@metadata({ azd: { type: 'location' } })
param location string

@description('Resource group to create or reuse; default rg-<environmentName>.')
param resourceGroupName string = ''

@description('Object ID of a user (e.g. the one running azd) given read access to the capture container; empty for none.')
param principalId string = ''

// ---------------------------------------------------------------- identity

@description('Use a user-assigned managed identity instead of the app\'s system-assigned one (e.g. to pre-approve its roles).')
param useUserAssignedIdentity bool = false

// ---------------------------------------------------------------- where the app may capture

@description('Subscription or resource-group IDs the app may capture in (CAPTURE_ALLOWED_SCOPES). Empty = this subscription. The target-read role is assigned on each.')
param captureScopes array = []

@description('Resource groups (IDs) holding the Network Watchers the app creates captures on. Empty = NetworkWatcherRG in each subscription of captureScopes.')
param networkWatcherResourceGroups array = []

@description('Regions in which to make sure this subscription has a Network Watcher (NetworkWatcher_<region> in NetworkWatcherRG). A region without one makes every alert there fail. Leave out regions whose watcher has another name or group.')
param networkWatcherRegions array = []

@description('Location of NetworkWatcherRG when this template creates it (an existing group keeps its location, which must then be given here).')
param networkWatcherResourceGroupLocation string = location

// ---------------------------------------------------------------- capture storage

@description('Region of the capture storage account: Network Watcher requires the VMs\' region.')
param captureStorageLocation string = location

@minValue(1)
@maxValue(3650)
@description('Days after which capture files, summaries and charts are deleted (lifecycle rule).')
param captureRetentionDays int = 30

@description('Give the identity the user-delegation-key action on the capture account, so reports can carry short-lived download links.')
param reportDownloadLinks bool = true

// ---------------------------------------------------------------- app settings (capture/settings.py)

@description('CAPTURE_LOCAL_PATH: also write the capture on the VM, in this folder (Linux: under /var/captures). Empty = storage only.')
param captureLocalPath string = ''

@description('CAPTURE_LOCAL_ROOT_LINUX: local capture paths on Linux VMs must be under this folder (itself under /var/captures).')
param captureLocalRootLinux string = '/var/captures'

@description('CAPTURE_LOCAL_ROOT_WINDOWS: local capture paths on Windows VMs must be under this folder (a drive-letter path). Empty = the default of the app, the Captures folder on drive C.')
param captureLocalRootWindows string = ''

@minValue(1)
@maxValue(18000)
@description('CAPTURE_TIME_LIMIT_SECONDS: capture length.')
param captureTimeLimitSeconds int = 60

@minValue(1)
@maxValue(18000)
@description('CAPTURE_MAX_TIME_LIMIT_SECONDS: the most an alert\'s override may ask for (at least captureTimeLimitSeconds).')
param captureMaxTimeLimitSeconds int = 18000

@minValue(1)
@maxValue(10000)
@description('CAPTURE_MAX_SESSIONS: captures per regional watcher before alerts are answered "limited".')
param captureMaxSessions int = 10

@minValue(0)
@maxValue(4294967295)
@description('CAPTURE_BYTES_PER_PACKET: snap length (0 = whole packets; 34 = IPv4 headers only).')
param captureBytesPerPacket int = 0

@minValue(1)
@maxValue(4294967295)
@description('CAPTURE_BYTES_PER_SESSION: capture size limit, also the most an override may ask for.')
param captureBytesPerSession int = 1073741824

@maxLength(10)
@description('CAPTURE_FILTERS: 5-tuple filters, e.g. [{"protocol": "TCP", "remotePort": "443"}].')
param captureFilters array = []

@minLength(1)
@maxLength(24)
@description('CAPTURE_NAME_PREFIX: names of the captures this app owns (lower-case letters, digits, -).')
param captureNamePrefix string = 'alertcap'

@description('CAPTURE_COMPUTE_API_VERSION: compute api-version of the VM lookup.')
param captureComputeApiVersion string = '2024-07-01'

@minValue(1)
@maxValue(60)
@description('CAPTURE_WEBHOOK_BUDGET_SECONDS: time budget of one webhook delivery, all its targets and Azure retries included.')
param captureWebhookBudgetSeconds int = 8

@minLength(11)
@description('CAPTURE_MONITOR_SCHEDULE: NCRONTAB schedule of the monitor (six fields).')
param captureMonitorSchedule string = '0 * * * * *'

@minValue(10)
@maxValue(86400)
@description('CAPTURE_START_GRACE_SECONDS: a capture not running by then is reported as failed.')
param captureStartGraceSeconds int = 300

@secure()
@description('CAPTURE_NOTIFY_URL: comma-separated URLs that receive reports (a Teams workflow URL carries a signature: kept secure, never output).')
param captureNotifyUrl string = ''

@allowed(['json', 'teams', 'slack'])
@description('CAPTURE_NOTIFY_FORMAT: format of the reports.')
param captureNotifyFormat string = 'json'

@description('CAPTURE_ANALYZE: analyse finished captures.')
param captureAnalyze bool = true

@minValue(1)
@maxValue(168)
@description('CAPTURE_LINK_LIFETIME_HOURS: lifetime of the download links in reports (user-delegation SAS, at most 7 days).')
param captureLinkLifetimeHours int = 24

// ---------------------------------------------------------------- flight recorder (continuous capture, PREVIEW)

@minLength(1)
@maxLength(512)
@description('CAPTURE_RECORDER_TAG: VMs and scale sets tagged with this name and the value "on" get a ring capture.')
param captureRecorderTag string = 'capture-recorder'

@minValue(0)
@maxValue(10000)
@description('CAPTURE_RECORDER_MAX: rings per regional watcher (0 turns the recorder off).')
param captureRecorderMax int = 2

@minValue(1)
@maxValue(10000)
@description('CAPTURE_RECORDER_FILE_COUNT: files a ring keeps.')
param captureRecorderFileCount int = 10

@minValue(102400)
@maxValue(4294967295)
@description('CAPTURE_RECORDER_FILE_SIZE_BYTES: size of each ring file.')
param captureRecorderFileSizeBytes int = 419430400

@minValue(900)
@maxValue(604800)
@description('CAPTURE_RECORDER_SESSION_SECONDS: the length of a ring session; it is replaced before it ends.')
param captureRecorderSessionSeconds int = 86400

// ---------------------------------------------------------------- follow-through queue

@minLength(1)
@description('Queues on the function\'s storage for the follow-through (connection CaptureQueue). Each gets its -poison twin; the first is the app\'s (CAPTURE_QUEUE_NAME).')
param captureQueueNames array = ['capture-reports']

@minValue(60)
@maxValue(3600)
@description('CAPTURE_CHECK_MAX_INTERVAL_SECONDS: longest gap between two status checks of a capture (early stops are found within it).')
param captureCheckMaxIntervalSeconds int = 600

@minValue(300)
@maxValue(86400)
@description('CAPTURE_REQUEUE_AFTER_SECONDS: a capture queued this long ago that still exists is queued again (its message was lost).')
param captureRequeueAfterSeconds int = 3600

// ---------------------------------------------------------------- alerting

@description('Action group short name (at most 12 characters, shown in SMS and e-mail).')
@maxLength(12)
param actionGroupShortName string = 'pcap'

@description('Call the webhook as a Secure Webhook (Entra token, useAadAuth) and turn on App Service Authentication restricted to the Azure Monitor webhook application.')
param secureWebhook bool = false

@description('Secure Webhook: object ID of the Entra application that protects the webhook (the action group\'s "Object Id").')
param webhookAppObjectId string = ''

@description('Secure Webhook: application (client) ID of that Entra application (App Service Authentication registration).')
param webhookAppClientId string = ''

@description('Secure Webhook: its Application ID URI (token audience), e.g. api://alert-packet-capture.')
param webhookAppIdentifierUri string = ''

@description('Secure Webhook: other client application IDs allowed through App Service Authentication (e.g. your tooling for GET /api/captures).')
param webhookExtraAllowedApplications array = []

@description('Optional sample metric alert: the VM resource ID it watches; empty for none.')
param sampleAlertVmId string = ''

@minValue(1)
@description('Sample alert: Network Out Total (bytes) over 5 minutes that fires it.')
param sampleAlertThresholdBytes int = 300000000

// ---------------------------------------------------------------- names

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var functionAppName = '${abbrs.webSitesFunctions}capture-${resourceToken}'
var roles = loadJsonContent('app/roles.json')
var azureMonitorWebhookAppId = '461e8683-5575-4561-ac7f-899cc907d62a' // "AzNS AAD Webhook", documented as fixed

// Scopes: '/subscriptions/<id>' (3 parts when split on '/') or '/subscriptions/<id>/resourceGroups/<name>' (5).
var effectiveCaptureScopes = empty(captureScopes) ? [subscription().id] : captureScopes
var scopeSubscriptionIds = [for scope in effectiveCaptureScopes: '/subscriptions/${split(scope, '/')[2]}']
var assignableScopes = union(scopeSubscriptionIds, [subscription().id]) // union() also removes duplicates

// Every app setting the app reads (capture/settings.py), from the parameters above; the platform's own
// settings (storage, Application Insights, queue connection, identity) are added in app/function.bicep.
// tests/infra/test_app_settings.py checks both directions against the app.
var captureAppSettings = {
  CAPTURE_STORAGE_ACCOUNT_ID: captureStorage.outputs.id
  CAPTURE_LOCAL_PATH: captureLocalPath
  CAPTURE_LOCAL_ROOT_LINUX: captureLocalRootLinux
  CAPTURE_LOCAL_ROOT_WINDOWS: captureLocalRootWindows
  CAPTURE_TIME_LIMIT_SECONDS: string(captureTimeLimitSeconds)
  CAPTURE_MAX_TIME_LIMIT_SECONDS: string(captureMaxTimeLimitSeconds)
  CAPTURE_MAX_SESSIONS: string(captureMaxSessions)
  CAPTURE_BYTES_PER_PACKET: string(captureBytesPerPacket)
  CAPTURE_BYTES_PER_SESSION: string(captureBytesPerSession)
  CAPTURE_FILTERS: string(captureFilters)
  CAPTURE_NAME_PREFIX: captureNamePrefix
  CAPTURE_ALLOWED_SCOPES: join(effectiveCaptureScopes, ',')
  ARM_ENDPOINT: environment().resourceManager
  CAPTURE_COMPUTE_API_VERSION: captureComputeApiVersion
  CAPTURE_WEBHOOK_BUDGET_SECONDS: string(captureWebhookBudgetSeconds)
  CAPTURE_MONITOR_SCHEDULE: captureMonitorSchedule
  CAPTURE_START_GRACE_SECONDS: string(captureStartGraceSeconds)
  CAPTURE_NOTIFY_URL: captureNotifyUrl
  CAPTURE_NOTIFY_FORMAT: captureNotifyFormat
  CAPTURE_BLOB_ENDPOINT: captureStorage.outputs.blobEndpoint
  CAPTURE_ANALYZE: captureAnalyze ? 'true' : 'false'
  CAPTURE_RECORDER_TAG: captureRecorderTag
  CAPTURE_RECORDER_MAX: string(captureRecorderMax)
  CAPTURE_RECORDER_FILE_COUNT: string(captureRecorderFileCount)
  CAPTURE_RECORDER_FILE_SIZE_BYTES: string(captureRecorderFileSizeBytes)
  CAPTURE_RECORDER_SESSION_SECONDS: string(captureRecorderSessionSeconds)
  CAPTURE_LINK_LIFETIME_HOURS: string(captureLinkLifetimeHours)
  CAPTURE_QUEUE_NAME: captureQueueNames[0]
  CAPTURE_CHECK_MAX_INTERVAL_SECONDS: string(captureCheckMaxIntervalSeconds)
  CAPTURE_REQUEUE_AFTER_SECONDS: string(captureRequeueAfterSeconds)
}

// ---------------------------------------------------------------- resource group and platform

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = if (useUserAssignedIdentity) {
  name: 'identity'
  scope: rg
  params: {
  name: '${abbrs.managedIdentityUserAssignedIdentities}capture-${resourceToken}'
  location: location
  tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
  logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
  applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
  location: location
  tags: tags
  }
}

module functionStorage 'app/function-storage.bicep' = {
  name: 'functionStorage'
  scope: rg
  params: {
  name: '${abbrs.storageStorageAccounts}fn${resourceToken}'
  location: location
  tags: tags
  deploymentContainerName: 'app-package-${take(resourceToken, 20)}'
  queueNames: captureQueueNames
  }
}

module captureStorage 'app/capture-storage.bicep' = {
  name: 'captureStorage'
  scope: rg
  params: {
  name: '${abbrs.storageStorageAccounts}cap${resourceToken}'
  location: captureStorageLocation
  tags: tags
  retentionDays: captureRetentionDays
  }
}

module functionApp 'app/function.bicep' = {
  name: 'function'
  scope: rg
  params: {
  name: functionAppName
  planName: '${abbrs.webServerFarms}${resourceToken}'
  location: location
  tags: tags
  userAssignedIdentityId: useUserAssignedIdentity ? identity.outputs.id : ''
  userAssignedIdentityClientId: useUserAssignedIdentity ? identity.outputs.clientId : ''
  storageAccountName: functionStorage.outputs.name
  deploymentContainerName: functionStorage.outputs.deploymentContainerName
  applicationInsightsName: monitoring.outputs.applicationInsightsName
  appSettings: captureAppSettings
  secureWebhook: secureWebhook
  webhookAppClientId: webhookAppClientId
  webhookAppIdentifierUri: webhookAppIdentifierUri
  allowedApplications: concat([azureMonitorWebhookAppId], webhookExtraAllowedApplications)
  }
}

var appPrincipalId = useUserAssignedIdentity ? identity.outputs.principalId : functionApp.outputs.principalId

// ---------------------------------------------------------------- roles inside the resource group

module appRoles 'app/app-roles.bicep' = {
  name: 'appRoles'
  scope: rg
  params: {
  principalId: appPrincipalId
  userPrincipalId: principalId
  functionStorageName: functionStorage.outputs.name
  applicationInsightsName: monitoring.outputs.applicationInsightsName
  captureStorageName: captureStorage.outputs.name
  captureContainerName: captureStorage.outputs.containerName
  captureStorageRoleId: captureStorageRole.id
  reportDownloadLinks: reportDownloadLinks
  }
}

// ---------------------------------------------------------------- custom roles (app/roles.json)

resource watchersRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'watchers')
  properties: {
  roleName: '${roles.watchers.roleName} (${environmentName})'
  description: roles.watchers.description
  type: 'CustomRole'
  permissions: [{ actions: roles.watchers.actions, notActions: [] }]
  assignableScopes: assignableScopes
  }
}

resource watcherLookupRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'watcherLookup')
  properties: {
  roleName: '${roles.watcherLookup.roleName} (${environmentName})'
  description: roles.watcherLookup.description
  type: 'CustomRole'
  permissions: [{ actions: roles.watcherLookup.actions, notActions: [] }]
  assignableScopes: assignableScopes
  }
}

resource targetsRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'targets')
  properties: {
  roleName: '${roles.targets.roleName} (${environmentName})'
  description: roles.targets.description
  type: 'CustomRole'
  permissions: [{ actions: roles.targets.actions, notActions: [] }]
  assignableScopes: assignableScopes
  }
}

resource captureStorageRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'captureStorage')
  properties: {
  roleName: '${roles.captureStorage.roleName} (${environmentName})'
  description: roles.captureStorage.description
  type: 'CustomRole'
  permissions: [{ actions: roles.captureStorage.actions, notActions: [] }]
  assignableScopes: assignableScopes
  }
}

// ---------------------------------------------------------------- custom role assignments, each at its scope

// Assignments are serialized (batchSize 1): scopes in one subscription repeat the same assignment, which is
// idempotent but must not race with itself.
@batchSize(1)
module watchersDefaultAssignments 'app/role-assignment-rg.bicep' = [for scope in effectiveCaptureScopes: if(length(networkWatcherResourceGroups) == 0) {
  name: 'watchers-${uniqueString(scope)}'
  scope: resourceGroup(split(scope, '/')[2], 'NetworkWatcherRG')
  params: {
    principalId: appPrincipalId
    roleDefinitionId: watchersRole.id
  }
  dependsOn: [networkWatcherGroup]
}]

@batchSize(1)
module watchersAssignments 'app/role-assignment-rg.bicep' = [for group in networkWatcherResourceGroups: {
  name: 'watchers-${uniqueString(group)}'
  scope: resourceGroup(split(group, '/')[2], split(group, '/')[4])
  params: {
    principalId: appPrincipalId
    roleDefinitionId: watchersRole.id
  }
  dependsOn: [networkWatcherGroup]
}]

@batchSize(1)
module watcherLookupAssignments 'app/role-assignment-sub.bicep' = [for scope in effectiveCaptureScopes: {
  name: 'watcher-lookup-${uniqueString(scope)}'
  scope: subscription(split(scope, '/')[2])
  params: {
    principalId: appPrincipalId
    roleDefinitionId: watcherLookupRole.id
  }
}]

module targetsSubscriptionAssignments 'app/role-assignment-sub.bicep' = [for scope in effectiveCaptureScopes: if(length(split(scope, '/')) == 3) {
  name: 'targets-${uniqueString(scope)}'
  scope: subscription(split(scope, '/')[2])
  params: {
    principalId: appPrincipalId
    roleDefinitionId: targetsRole.id
  }
}]

module targetsResourceGroupAssignments 'app/role-assignment-rg.bicep' = [for scope in effectiveCaptureScopes: if(length(split(scope, '/')) == 5) {
  name: 'targets-${uniqueString(scope)}'
  scope: resourceGroup(split(scope, '/')[2], split(scope, '/')[4])
  params: {
    principalId: appPrincipalId
    roleDefinitionId: targetsRole.id
  }
}]

// ---------------------------------------------------------------- Network Watcher per region

resource networkWatcherGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = if (!empty(networkWatcherRegions)) {
  name: 'NetworkWatcherRG'
  location: networkWatcherResourceGroupLocation
}

module networkWatchers 'app/network-watchers.bicep' = if (!empty(networkWatcherRegions)) {
  name: 'networkWatchers'
  scope: resourceGroup('NetworkWatcherRG')
  params: {
    regions: networkWatcherRegions
  }
  dependsOn: [networkWatcherGroup]
}

// ---------------------------------------------------------------- alerting

module alerting 'app/alerting.bicep' = {
  name: 'alerting'
  scope: rg
  params: {
    actionGroupName: '${abbrs.insightsActionGroups}capture-${resourceToken}'
    shortName: actionGroupShortName
    tags: tags
    functionAppName: functionApp.outputs.name
    webhookRoute: functionApp.outputs.webhookRoute
    secureWebhook: secureWebhook
    webhookAppObjectId: webhookAppObjectId
    webhookAppIdentifierUri: webhookAppIdentifierUri
    sampleAlertName: '${abbrs.insightsMetricAlerts}vm-network-out-${resourceToken}'
    sampleAlertVmId: sampleAlertVmId
    sampleAlertThresholdBytes: sampleAlertThresholdBytes
  }
  dependsOn: [appRoles]
}

// ---------------------------------------------------------------- outputs (no keys, no secrets)

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_ID string = functionApp.outputs.id
output WEBHOOK_URL string = functionApp.outputs.webhookUrl
output ACTION_GROUP_ID string = alerting.outputs.actionGroupId
output CAPTURE_STORAGE_ACCOUNT_ID string = captureStorage.outputs.id
output CAPTURE_STORAGE_ACCOUNT_NAME string = captureStorage.outputs.name
output APP_PRINCIPAL_ID string = appPrincipalId
