import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import 'realtime-client/styles.css';
import './demo.css';
import './mindmap.css';
import { App } from './App';

const root = document.getElementById('root');
if (!root) throw new Error('no #root');
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
