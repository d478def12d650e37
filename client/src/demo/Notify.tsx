import { useId, useState, type ReactNode } from 'react';
import { askNotificationPermission, notificationsSupported, useJobNotifications } from 'realtime-client/react';

const KEY = 'realtime-demo:notify';

function stored(): boolean {
  try {
    return localStorage.getItem(KEY) === '1' && notificationsSupported() && Notification.permission === 'granted';
  } catch {
    return false;
  }
}

function store(on: boolean): void {
  try {
    if (on) localStorage.setItem(KEY, '1');
    else localStorage.removeItem(KEY);
  } catch {
    // not remembered
  }
}

/**
 * "Notify me when a job finishes or fails": off by default; the browser's permission is asked only when the
 * person turns it on. Notifications show while the tab is hidden.
 */
export function NotifyToggle(): ReactNode {
  const id = useId();
  const [on, setOn] = useState(stored);
  const [note, setNote] = useState<string | null>(null);
  useJobNotifications(on);

  const toggle = (wanted: boolean): void => {
    setNote(null);
    if (!wanted) {
      setOn(false);
      store(false);
      return;
    }
    void askNotificationPermission().then((permission) => {
      if (permission === 'granted') {
        setOn(true);
        store(true);
      } else if (permission === 'unsupported') {
        setNote("This browser can't show notifications.");
      } else if (permission === 'denied') {
        setNote('Notifications are blocked for this site — allow them in the browser’s site settings.');
      } else {
        setNote('Notifications stay off: the browser did not get a yes.');
      }
    });
  };

  return (
    <div className="notify">
      <label className="switch" htmlFor={id}>
        <input id={id} type="checkbox" role="switch" checked={on} onChange={(e) => toggle(e.target.checked)} />
        <span>Notify me when a job finishes or fails</span>
      </label>
      {note ? (
        <p className="notify__note" role="alert">
          {note}
        </p>
      ) : null}
    </div>
  );
}
