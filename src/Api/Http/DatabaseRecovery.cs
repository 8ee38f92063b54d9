namespace Audit.Api.Http;

/// <summary>
/// serve on the embedded database: a request that finds the database gone (its server killed) starts
/// the recovery a command would run at start-up, one at a time, so that later requests work again;
/// that request itself answers 503 with Retry-After.
/// </summary>
public sealed class DatabaseRecovery(Func<CancellationToken, Task> recover)
{
    private int _running;

    public void Trigger()
    {
        if (Interlocked.Exchange(ref _running, 1) != 0)
        {
            return;
        }

        _ = Task.Run(async () =>
        {
            try
            {
                await recover(CancellationToken.None);
            }
            catch (Exception)
            {
                // Not recovered this time: the next failing request tries again.
            }
            finally
            {
                Volatile.Write(ref _running, 0);
            }
        });
    }
}
