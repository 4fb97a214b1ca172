// The action group that calls the webhook (common alert schema), optionally as a Secure Webhook, and an
// optional sample metric alert on one VM.
param actionGroupName string
@maxLength(12)
param shortName string
param tags object
param functionAppName string
@description('Route of the webhook function with the host\'s route prefix (function.bicep output), e.g. api/alerts.')
param webhookRoute string
param secureWebhook bool
param webhookAppObjectId string
param webhookAppIdentifierUri string
param sampleAlertName string
param sampleAlertVmId string
param sampleAlertThresholdBytes int

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

// The webhook's auth level is FUNCTION, so every call carries a key; the host's default key is read at
// deployment time and stored in the action group only (it is never an output). With secureWebhook the
// Entra token is checked by App Service Authentication in front of the key.
var webhookKey = listKeys('${site.id}/host/default', '2024-04-01').functionKeys.default

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: shortName
    enabled: true
    webhookReceivers: [
      {
        name: 'packet-capture'
        serviceUri: 'https://${site.properties.defaultHostName}/${webhookRoute}?code=${webhookKey}'
        useCommonAlertSchema: true
        useAadAuth: secureWebhook
        objectId: secureWebhook ? webhookAppObjectId : null
        identifierUri: secureWebhook ? webhookAppIdentifierUri : null
        tenantId: secureWebhook ? tenant().tenantId : null
      }
    ]
  }
}

resource sampleAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = if (!empty(sampleAlertVmId)) {
  name: sampleAlertName
  location: 'global'
  tags: tags
  properties: {
    description: 'Sample: unusual outbound traffic on one VM starts a packet capture.'
    severity: 2
    enabled: true
    scopes: [sampleAlertVmId]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT5M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          name: 'network-out'
          criterionType: 'StaticThresholdCriterion'
          metricName: 'Network Out Total'
          metricNamespace: 'Microsoft.Compute/virtualMachines'
          operator: 'GreaterThan'
          threshold: sampleAlertThresholdBytes
          timeAggregation: 'Total'
        }
      ]
    }
    actions: [{ actionGroupId: actionGroup.id }]
  }
}

output actionGroupId string = actionGroup.id
