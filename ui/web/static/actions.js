// @ts-check
// Operator actions (retry, cancel, bulk actions on a filter) belong here once the gateway's
// contract has them: the gateway is the one write surface, and the dashboard only shows an
// action when the gateway offers it (with a token where one is needed). Until then these lists
// are empty and the job page and the jobs view show no toolbar.

import { h } from './dom.js';

/** @typedef {import('./api.js').Job} Job */

/**
 * @typedef {Object} Action
 * @property {string} label the button's text
 * @property {() => Promise<void>} run
 */

/**
 * Actions on one job.
 * @param {Job} _job
 * @returns {Action[]}
 */
export function jobActions(_job) {
  return [];
}

/**
 * The toolbar of `actions`, or null when there is none.
 * @param {Action[]} actions
 */
export function actionBar(actions) {
  if (actions.length === 0) return null;
  return h(
    'div',
    { class: 'actions', role: 'toolbar', 'aria-label': 'Actions' },
    ...actions.map((action) => h('button', { type: 'button', onclick: () => void action.run() }, action.label)),
  );
}
