// confirm.js asks a yes-or-no question in a modal <dialog>.
import { h } from './dom.js';

// confirmDialog resolves true when the user presses the action button,
// false on Cancel or Escape; body is a list of nodes.
export function confirmDialog(title, body, action) {
  return new Promise((resolve) => {
    const dlg = h('dialog', { class: 'confirm', id: 'confirm' },
      h('form', { method: 'dialog' },
        h('h2', null, title),
        body,
        h('div', { class: 'buttons' },
          h('button', { value: 'cancel', type: 'submit' }, 'Cancel'),
          h('button', { value: 'ok', type: 'submit', class: 'danger', id: 'confirm-ok' }, action))));
    dlg.addEventListener('close', () => {
      resolve(dlg.returnValue === 'ok');
      dlg.remove();
    });
    document.body.appendChild(dlg);
    dlg.showModal();
  });
}
