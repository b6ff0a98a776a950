// @ts-check
import { createReadModelClient } from './api.js';

const readModel = createReadModelClient(location.origin);
const view = /** @type {HTMLElement} */ (document.getElementById('view'));
readModel.getOverview().then((overview) => {
  view.textContent = `${overview.totals.submitted} jobs submitted`;
});
