// App Service Authentication for the Secure Webhook (deployed by function.bicep when secureWebhook is on):
// only Entra tokens for this API issued to the allowed applications (the Azure Monitor webhook
// application first) get through; everything else gets 401/403 before the function runs.
param siteName string
param clientId string
param identifierUri string
param allowedApplications array

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: siteName
}

resource authentication 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13:this resource is App Service Authentication (authsettingsV2, platform.enabled); the check only knows the older siteConfig shape
  // checkov:skip=CKV_AZURE_63:site check on a config child; Flex Consumption logs go to Application Insights
  // checkov:skip=CKV_AZURE_65:site check on a config child; Flex Consumption logs go to Application Insights
  // checkov:skip=CKV_AZURE_66:site check on a config child; Flex Consumption logs go to Application Insights
  // checkov:skip=CKV_AZURE_80:site check on a config child; the app is Python, not .NET
  // checkov:skip=CKV_AZURE_88:site check on a config child; Flex Consumption has no Azure Files content share
  // checkov:skip=CKV_AZURE_222:site check on a config child; see the site's skip
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: { enabled: true }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
    }
    httpSettings: { requireHttps: true }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: clientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [identifierUri]
          defaultAuthorizationPolicy: { allowedApplications: allowedApplications }
        }
      }
    }
    login: { tokenStore: { enabled: false } }
  }
}
