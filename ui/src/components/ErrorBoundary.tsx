import { Component, type ReactNode } from 'react';
import { ErrorBox } from './Status';

/**
 * Keeps a rendering bug on one screen from blanking the app: the screen shows
 * the error, the navigation keeps working. `resetKey` (the URL) clears it.
 */
export class ErrorBoundary extends Component<{ resetKey: string; children: ReactNode }, { error: unknown; key: string }> {
  state = { error: null as unknown, key: this.props.resetKey };

  static getDerivedStateFromError(error: unknown) {
    return { error };
  }

  static getDerivedStateFromProps(props: { resetKey: string }, state: { error: unknown; key: string }) {
    return props.resetKey !== state.key ? { error: null, key: props.resetKey } : null;
  }

  render() {
    return this.state.error ? <ErrorBox error={this.state.error} /> : this.props.children;
  }
}
