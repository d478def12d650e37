import { useCallback, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { ConnectionStatus, ProgressProvider, Toasts, useBackgroundTitle, useConnectionProblem } from 'realtime-client/react';
import { Dashboard } from './Dashboard';
import { MindmapView } from './MindmapView';
import { useRoute } from './route';
import { SignIn } from './SignIn';
import { fetchDemoToken, fetchServerInfo, rememberedSession, rememberSession, transportsFromUrl, type Session, type ServerInfo } from './session';

const EXPIRED = 'Your sign-in has expired. Sign in again to keep following your jobs — they kept running meanwhile.';

function Brand(): ReactNode {
  return (
    <div className="brand">
      <svg className="brand__mark" viewBox="0 0 32 32" aria-hidden="true">
        <circle cx="16" cy="16" r="12" fill="none" stroke="#d6dbe4" strokeWidth="5" />
        <path d="M16 4a12 12 0 0 1 12 12" fill="none" stroke="#3d5afe" strokeWidth="5" strokeLinecap="round" />
      </svg>
      <span className="brand__name">realtime</span>
      <span className="brand__tag">job progress</span>
    </div>
  );
}

function Footer({ info }: { info: ServerInfo | null | undefined }): ReactNode {
  const transports = transportsFromUrl();
  return (
    <footer className="footer">
      {info?.demo ? 'Demo mode · live' : 'Live'} over Socket.IO, with HTTP polling when it cannot connect
      {transports ? ` · transport: ${transports.join(', ')}` : ''}
      {info?.version ? ` · v${info.version}` : ''}
    </footer>
  );
}

/** A refusal the person can act on: an expired sign-in, or too many tabs. */
function ProblemBanner({ expired, onSignInAgain }: { expired: boolean; onSignInAgain: () => void }): ReactNode {
  const problem = useConnectionProblem();
  if (problem === 'unauthorized' || expired) {
    return (
      <div className="banner banner--error" role="alert">
        <p>{EXPIRED}</p>
        <button type="button" className="rt-button rt-button--primary" onClick={onSignInAgain}>
          Sign in again
        </button>
      </div>
    );
  }
  if (problem === 'too_many_connections') {
    return (
      <div className="banner" role="alert">
        <p>
          This name is open in too many tabs or on too many devices at once. Close a few: this page keeps your jobs up to
          date by polling meanwhile, and reconnects on its own.
        </p>
      </div>
    );
  }
  return null;
}

function BackgroundTitle(): null {
  useBackgroundTitle('realtime');
  return null;
}

function Shell({ header, toasts, children, info }: { header?: ReactNode; toasts?: ReactNode; children: ReactNode; info: ServerInfo | null | undefined }): ReactNode {
  return (
    <div className="app">
      <header className="topbar">
        <Brand />
        {header}
      </header>
      <div className="app__scroll">
        {children}
        <Footer info={info} />
      </div>
      {toasts ? <div className="toast-dock">{toasts}</div> : null}
    </div>
  );
}

export function App(): ReactNode {
  const [info, setInfo] = useState<ServerInfo | null | undefined>(undefined);
  const [session, setSession] = useState<Session | null>(rememberedSession);
  const [again, setAgain] = useState<{ name: string; notice: string | null } | null>(null);
  // The HTTP API refused the sign-in (a 401 after a fresh token).
  const [expired, setExpired] = useState(false);
  const [route] = useRoute();
  // The token from signing in serves the first connection; every later one asks for a new token.
  const firstToken = useRef<string | null>(null);
  const transports = useMemo(() => transportsFromUrl(), []);

  useEffect(() => {
    void fetchServerInfo().then(setInfo);
  }, []);

  const name = session?.name ?? null;
  const getToken = useCallback(async (): Promise<string> => {
    const token = firstToken.current;
    firstToken.current = null;
    if (token) return token;
    if (!name) throw new Error('not signed in');
    const answer = await fetchDemoToken(name, { retries: 3 });
    return answer.token;
  }, [name]);

  const signOut = (notice: string | null = null): void => {
    setAgain(notice ? { name: session?.name ?? '', notice } : null);
    setExpired(false);
    rememberSession(null);
    setSession(null);
  };

  if (!session) {
    return (
      <Shell info={info}>
        <main className="main main--narrow">
          <SignIn
            info={info}
            initialName={again?.name}
            notice={again?.notice}
            onSignedIn={(answer) => {
              firstToken.current = answer.token;
              const next = { name: answer.name, userId: answer.userId || null };
              rememberSession(next);
              setAgain(null);
              setSession(next);
            }}
          />
        </main>
      </Shell>
    );
  }

  const header = (
    <div className="topbar__right">
      <ConnectionStatus />
      <p className="user">
        <span className="user__label">Signed in as </span>
        <strong className="user__name">{session.name}</strong>
        {session.userId ? (
          <span className="user__id" title="Your user id, derived from the name">
            {session.userId}
          </span>
        ) : null}
      </p>
      <button type="button" className="rt-button rt-button--ghost" onClick={() => signOut()}>
        Sign out
      </button>
    </div>
  );

  return (
    <ProgressProvider key={session.name} getToken={getToken} options={{ ...(transports ? { transports } : {}), maxJobs: 1000 }}>
      <BackgroundTitle />
      <Shell info={info} header={header} toasts={<Toasts variant="inline" max={2} />}>
        <main className="main">
          <ProblemBanner expired={expired} onSignInAgain={() => signOut(EXPIRED)} />
          {route.page === 'mindmap' ? <MindmapView jobId={route.jobId} /> : <Dashboard onSignInExpired={() => setExpired(true)} />}
        </main>
      </Shell>
    </ProgressProvider>
  );
}
