"""`python -m app.worker`: a sampling worker for the Redis engine (see `app.engine.redis_worker`)."""

from app.engine.redis_worker import main

if __name__ == "__main__":
    main()
