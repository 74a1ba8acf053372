// One visitor, one banner, driven through Klevu's own headless SDK (@klevu/core, the version
// pinned in package.json) the way its documentation has a shop use it: KlevuConfig.init (the
// visitor session, then the Klaviyo connector's second call), kmcRecommendation with the page's
// options and the sendRecommendationViewEvent modifier, then a click on the same product (or
// the static banner) the shop's visitor chooses.
//
// Read by tests/integration/test_klevu_core_differential.py, which points every Klevu URL at a
// recording proxy in front of the simulator and compares what the SDK sent with what the shop
// sent. The scenario comes as JSON on stdin; stdout gets the record ids the SDK received.
//
// Node has no browser: the SDK keeps its session in `window.localStorage` (an in-memory one
// here), and its search URL is "https://" + the config's basePath, so a loopback https URL is
// sent as http (the simulator serves plain HTTP). Nothing else about a request is touched.
import {
  KlevuConfig,
  KlevuFetch,
  KlevuLastClickedProducts,
  kmcRecommendation,
  sendRecommendationViewEvent,
} from "@klevu/core"

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const scenario = JSON.parse(Buffer.concat(chunks).toString("utf8"))

function memoryStorage() {
  const items = new Map()
  return {
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => items.set(key, String(value)),
    removeItem: (key) => items.delete(key),
  }
}
globalThis.window = { localStorage: memoryStorage(), sessionStorage: memoryStorage() }

let inFlight = 0
const fetchOverNetwork = globalThis.fetch
globalThis.fetch = async (url, init) => {
  inFlight += 1
  try {
    const plain = String(url).replace(/^https:\/\/127\.0\.0\.1:/, "http://127.0.0.1:")
    return await fetchOverNetwork(plain, init)
  } finally {
    inFlight -= 1
  }
}

// The SDK fires its calls without handing back their promises: wait until none is running.
async function settled() {
  for (let quiet = 0; quiet < 5; ) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    quiet = inFlight === 0 ? quiet + 1 : 0
  }
}

if (scenario.exchangeId) {
  // Klaviyo's onsite object, as klaviyo.js leaves it in a page: the connector reads from it.
  globalThis._learnq = { push: () => ({ $exchange_id: scenario.exchangeId }) }
}
KlevuConfig.init({
  apiKey: scenario.apiKey,
  url: `${scenario.klevu}/cs/v2/search`,
  visitorServiceUrl: `${scenario.klevu}/visitor/public/1.0`,
  recommendationsApiUrl: `${scenario.klevu}/recommendations/`,
  eventsApiV2Url: `${scenario.klevu}/analytics/collect`,
  enableKlaviyoConnector: Boolean(scenario.exchangeId),
})
await settled()
// Products chosen earlier, oldest first, so the newest ends first, as in the shop's cookie.
for (const id of [...(scenario.clicked || [])].reverse()) {
  KlevuLastClickedProducts.click(id, { id })
}

const queryId = "klevuRECSItemList"
const result = await KlevuFetch(
  kmcRecommendation(
    scenario.recsKey,
    { id: queryId, ...scenario.options },
    sendRecommendationViewEvent(undefined, undefined, scenario.resolution === "mobile"),
  ),
)
await settled()
const query = result.queryExists(queryId) ? result.queriesById(queryId) : undefined
if (scenario.click === "banner") {
  query.recommendationBannerClickEvent({ resolution: scenario.resolution })
} else if (scenario.click) {
  query.recommendationClickEvent({ productId: scenario.click })
}
await settled()
process.stdout.write(JSON.stringify({ records: (query?.records || []).map((r) => r.id) }))
process.exit(0)
